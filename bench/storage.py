"""bench/storage: the S3 artifact store against boto3 called directly, on one S3-protocol server.

Starts `moto_server` on loopback (the tests' server; a MinIO endpoint can be given instead),
then, in one run, for a file of --megabytes:
- publish (ArtifactStore.publish: multipart upload, content type, HEAD to confirm) against
  boto3's `upload_file` of the same file with its default transfer settings;
- a whole read (ArtifactStore.iter_bytes) against `get_object(...)["Body"].read()`;
- --ranges reads of 1 MiB at random offsets (what a scrubbing player asks the download route
  for) against `get_object(Range=...)`.
Each pair is timed side by side (best of --repeat, alternating which goes first) with its ratio.
Targets: publish and reads at most 1.1x the direct call.

Usage: .venv/bin/python bench/storage.py [--megabytes 64] [--ranges 50] [--repeat 3]
       [--endpoint http://127.0.0.1:9000 --bucket B --access-key K --secret-key S]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from media_pipeline_tests.s3_server import ACCESS_KEY, SECRET_KEY, moto_server, s3_client, s3_store

MIB = 1024 * 1024


def side_by_side(repeat: int, ours: Callable[[], object], theirs: Callable[[], object]) -> tuple[float, float]:
    """Best of `repeat` for each, alternating which goes first (the server warms up and fills)."""
    times: tuple[list[float], list[float]] = ([], [])
    for round_number in range(repeat):
        order = ((0, ours), (1, theirs)) if round_number % 2 == 0 else ((1, theirs), (0, ours))
        for index, fn in order:
            start = time.perf_counter()
            fn()
            times[index].append(time.perf_counter() - start)
    return min(times[0]), min(times[1])


def run(endpoint: str, bucket: str, access_key: str, secret_key: str, args: argparse.Namespace) -> None:
    client = s3_client(endpoint, access_key, secret_key)
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        root = Path(tmp) / "artifacts"
        store = s3_store(root, endpoint, bucket, s3_access_key=access_key, s3_secret_key=secret_key)
        payload = root / "cuts" / "bench" / "final_video.mp4"
        payload.parent.mkdir(parents=True)
        payload.write_bytes(os.urandom(args.megabytes * MIB))
        key = store.relative(payload)
        size = payload.stat().st_size

        publish, direct_up = side_by_side(
            args.repeat, lambda: store.publish(payload), lambda: client.upload_file(str(payload), bucket, f"d/{key}")
        )

        def store_read() -> None:
            for _ in store.iter_bytes(key):
                pass

        read, direct_read = side_by_side(
            args.repeat, store_read, lambda: client.get_object(Bucket=bucket, Key=key)["Body"].read()
        )

        offsets = [random.Random(7).randrange(0, size - MIB) for _ in range(args.ranges)]

        def store_ranges() -> None:
            for offset in offsets:
                for _ in store.iter_bytes(key, offset, MIB):
                    pass

        def direct_ranges() -> None:
            for offset in offsets:
                client.get_object(Bucket=bucket, Key=key, Range=f"bytes={offset}-{offset + MIB - 1}")["Body"].read()

        ranges, direct_ranges_time = side_by_side(args.repeat, store_ranges, direct_ranges)

    rows = [
        (f"publish {args.megabytes} MiB", publish, direct_up),
        (f"read {args.megabytes} MiB whole", read, direct_read),
        (f"{args.ranges} ranged reads of 1 MiB", ranges, direct_ranges_time),
    ]
    print(f"S3 endpoint {endpoint}, best of {args.repeat}")
    print(f"{'':32} {'store':>9} {'boto3':>9} {'ratio':>7}")
    for label, ours, theirs in rows:
        print(f"{label:32} {ours:8.3f}s {theirs:8.3f}s {ours / theirs:6.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=64)
    parser.add_argument("--ranges", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--endpoint", help="an existing S3 endpoint (default: start moto_server)")
    parser.add_argument("--bucket")
    parser.add_argument("--access-key", default=ACCESS_KEY)
    parser.add_argument("--secret-key", default=SECRET_KEY)
    args = parser.parse_args()
    if args.endpoint:
        run(args.endpoint, args.bucket, args.access_key, args.secret_key, args)
        return
    servers = moto_server()
    endpoint = next(servers)
    try:
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        s3_client(endpoint).create_bucket(Bucket=bucket)
        run(endpoint, bucket, ACCESS_KEY, SECRET_KEY, args)
    finally:
        servers.close()


if __name__ == "__main__":
    main()
