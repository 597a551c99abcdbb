"""Offline text to speech: espeak-ng or piper, run as subprocesses, cached by
(engine, version, voice, text)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from media_pipeline.core.files import atomic_path

INSTALL = {
    "espeak-ng": "install it with `apt-get install espeak-ng` (or your system's package manager)",
    "piper": "install it with `pip install piper-tts` and pass the path of a voice model (.onnx) as `voice`",
}
DEFAULT_VOICE = {"espeak-ng": "en", "piper": ""}


class TtsError(RuntimeError):
    """Synthesis cannot happen; `str()` says why and what to do."""


@dataclass(frozen=True)
class Engine:
    name: str
    executable: str
    version: str


def find_engine(name: str) -> Engine:
    """The installed engine, or TtsError saying how to install it."""
    executable = shutil.which(name)
    if executable is None:
        raise TtsError(f"the text-to-speech engine {name} is not installed on the render host; {INSTALL[name]}")
    return Engine(name, executable, _version(executable))


@cache
def _version(executable: str) -> str:
    try:
        proc = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TtsError(f"{Path(executable).name} --version did not answer ({exc}); reinstall it") from exc
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if (proc.stdout or proc.stderr).strip() else "unknown"


def cache_key(engine: Engine, voice: str | None, text: str) -> str:
    payload = [engine.name, engine.version, voice or DEFAULT_VOICE[engine.name], text]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()


def synthesise(engine: Engine, voice: str | None, text: str, cache_dir: Path) -> tuple[Path, bool]:
    """A WAV of `text` spoken; (path, reused)."""
    target = cache_dir / f"{cache_key(engine, voice, text)}.wav"
    if target.exists():
        return target, True
    voice = voice or DEFAULT_VOICE[engine.name]
    with atomic_path(target) as tmp:
        if engine.name == "espeak-ng":
            command = [engine.executable, "-v", voice, "-w", str(tmp), "--stdin"]
        else:
            command = [engine.executable, "--model", voice, "--output_file", str(tmp)]
        try:
            proc = subprocess.run(command, input=text, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired as exc:
            raise TtsError(f"{engine.name} took longer than 600 s to speak a scene's text; shorten it") from exc
        if proc.returncode != 0 or not tmp.exists() or tmp.stat().st_size <= 44:
            said = (proc.stderr or "").strip().splitlines()[-1:] or ["nothing"]
            raise TtsError(
                f"{engine.name} could not speak the text with voice {voice!r} (exit code {proc.returncode}, it said: "
                f"{said[0][:200]}); check that the voice is installed"
            )
    return target, False
