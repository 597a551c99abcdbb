"""Compositions: generated multi-segment videos, their segments, the generators, renders."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from sqlalchemy.orm import Session

from api.composition_schemas import CompositionOut, GeneratorOut, RenderCreated, RenderOut, SegmentOut, TransitionOut
from api.deps import GatewayDep, SessionDep, SettingsDep
from api.job_service import as_utc, start_job
from api.pagination import CursorQuery, LimitQuery, decode_cursor, encode_cursor
from api.params import IdempotencyKey
from api.problems import ApiProblem, field_problem, not_found, problem_responses
from api.schemas import Page
from media_pipeline.compositions import store
from media_pipeline.compositions.config import CompositionRenderConfig
from media_pipeline.compositions.generators import registry
from media_pipeline.compositions.generators.base import Generator
from media_pipeline.compositions.partitions import split_render_key
from media_pipeline.compositions.spec import CompositionIn, CompositionUpdate, RenderRequest, Reorder, SegmentIn
from media_pipeline.db.models import Composition, CompositionSegment
from media_pipeline.platform.urls import artifact_url
from media_pipeline.settings import Settings

router = APIRouter(tags=["compositions"])
KIND = "composition_render"

CompositionId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The composition's id")]
SegmentId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The segment's id")]
SAVE_ERRORS = problem_responses(
    400, 404, 422,
    descriptions={422: "Invalid request; `errors[].field` names the field, e.g. `segments.0.params.source` for a "
                  "parameter the generator's own schema refuses, or `segments.1.generator` for an unknown one."},
)  # fmt: skip


def segment_view(segment: CompositionSegment) -> SegmentOut:
    transition = dict(segment.transition or {"type": "cut"})
    return SegmentOut(
        id=segment.id, composition_id=segment.composition_id, position=segment.position, generator=segment.generator,
        prompt=segment.prompt, negative_prompt=segment.negative_prompt, params=segment.params, seed=segment.seed,
        frames=segment.frames, seconds=segment.seconds, inputs=list(segment.inputs),
        transition=TransitionOut(type=transition.get("type", "cut"), frames=transition.get("frames")),
    )  # fmt: skip


def composition_view(composition: Composition) -> CompositionOut:
    segments = [segment_view(s) for s in composition.segments]
    # The last segment's crossfade has nothing to fade into: it is a cut.
    overlaps = sum(s.transition.frames or 0 for s in segments[:-1] if s.transition.type == "crossfade")
    return CompositionOut(
        id=composition.id, name=composition.name, rate=composition.rate,
        resolution=f"{composition.width}x{composition.height}", width=composition.width, height=composition.height,
        soundtrack=store.soundtrack_id(composition), segments=segments,
        total_frames=sum(s.frames for s in segments) - overlaps,
        created_at=as_utc(composition.created_at), updated_at=as_utc(composition.updated_at),
    )  # fmt: skip


def _generators(settings: Settings) -> dict[str, Generator]:
    return registry.generators(settings)


def _composition(session: Session, composition_id: int) -> Composition:
    composition = store.get(session, composition_id)
    if composition is None:
        raise not_found("composition", composition_id)
    return composition


def _segment(session: Session, segment_id: int) -> CompositionSegment:
    segment = session.get(CompositionSegment, segment_id)
    if segment is None:
        raise not_found("segment", segment_id)
    return segment


def _saved(session: Session, action: Any) -> Any:
    try:
        result = action()
    except store.Invalid as exc:
        session.rollback()
        raise field_problem(exc.field, str(exc)) from None
    session.commit()
    return result


# -- compositions -----------------------------------------------------------------------------


@router.post("/compositions", status_code=201, response_model=CompositionOut, summary="Create a composition",
             description="A name, an exact rate, a resolution and (optionally) its segments at once. Each segment's "
             "`params` are checked against its generator's schema (`GET /v1/generators`); `seed: \"random\"` is "
             "drawn now and stored; `seconds` become frames now: `floor(seconds * rate + 1/2)`.",
             responses=SAVE_ERRORS)  # fmt: skip
def create_composition(
    body: CompositionIn, response: Response, session: SessionDep, settings: SettingsDep
) -> CompositionOut:
    composition = _saved(session, lambda: store.create(session, body, _generators(settings)))
    response.headers["Location"] = f"/v1/compositions/{composition.id}"
    return composition_view(composition)


@router.get("/compositions", response_model=Page[CompositionOut], summary="List compositions, newest first")
def list_compositions(session: SessionDep, limit: LimitQuery = 50, cursor: CursorQuery = None) -> Page[CompositionOut]:
    position = decode_cursor(cursor, before=int)
    rows = store.listing(session, position["before"] if position else None, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor({"before": rows[-1].id}) if more and rows else None
    return Page[CompositionOut](items=[composition_view(c) for c in rows], next_cursor=next_cursor)


@router.get("/compositions/{composition_id}", response_model=CompositionOut, summary="A composition and its "
            "segments", responses=problem_responses(404))  # fmt: skip
def get_composition(composition_id: CompositionId, session: SessionDep) -> CompositionOut:
    return composition_view(_composition(session, composition_id))


@router.put("/compositions/{composition_id}", response_model=CompositionOut, summary="Change name, rate, "
            "resolution or soundtrack", description="Segments keep their frame counts (converted once, when saved).",
            responses=SAVE_ERRORS)  # fmt: skip
def put_composition(composition_id: CompositionId, body: CompositionUpdate, session: SessionDep) -> CompositionOut:
    composition = _composition(session, composition_id)
    _saved(session, lambda: store.update(session, composition, body))
    return composition_view(composition)


@router.delete("/compositions/{composition_id}", status_code=204, summary="Delete a composition and its segments",
               description="Its renders' jobs and files stay; cached clips stay in the generation cache.",
               responses=problem_responses(404))  # fmt: skip
def delete_composition(composition_id: CompositionId, session: SessionDep) -> Response:
    session.delete(_composition(session, composition_id))
    session.commit()
    return Response(status_code=204)


# -- segments ---------------------------------------------------------------------------------


@router.post("/compositions/{composition_id}/segments", status_code=201, response_model=SegmentOut,
             summary="Add a segment at the end", responses=SAVE_ERRORS)  # fmt: skip
def add_segment(
    composition_id: CompositionId, body: SegmentIn, session: SessionDep, settings: SettingsDep
) -> SegmentOut:
    composition = _composition(session, composition_id)
    segment = _saved(session, lambda: store.add_segment(session, composition, body, _generators(settings)))
    return segment_view(segment)


@router.post("/compositions/{composition_id}/segments/reorder", response_model=CompositionOut,
             summary="Put the segments in a new order", description="`order` lists every segment id once.",
             responses=SAVE_ERRORS)  # fmt: skip
def reorder_segments(composition_id: CompositionId, body: Reorder, session: SessionDep) -> CompositionOut:
    composition = _composition(session, composition_id)
    _saved(session, lambda: store.reorder(composition, body.order))
    session.refresh(composition)
    return composition_view(composition)


@router.get("/segments/{segment_id}", response_model=SegmentOut, summary="A segment",
            responses=problem_responses(404))  # fmt: skip
def get_segment(segment_id: SegmentId, session: SessionDep) -> SegmentOut:
    return segment_view(_segment(session, segment_id))


@router.put("/segments/{segment_id}", response_model=SegmentOut, summary="Replace a segment",
            description='Keeps its place. `seed: "random"` draws a new seed: that is how to regenerate it.',
            responses=SAVE_ERRORS)  # fmt: skip
def put_segment(segment_id: SegmentId, body: SegmentIn, session: SessionDep, settings: SettingsDep) -> SegmentOut:
    segment = _segment(session, segment_id)
    _saved(session, lambda: store.replace_segment(session, segment, body, _generators(settings)))
    return segment_view(segment)


@router.delete("/segments/{segment_id}", status_code=204, summary="Delete a segment",
               responses=problem_responses(404))  # fmt: skip
def delete_segment(segment_id: SegmentId, session: SessionDep) -> Response:
    store.delete_segment(session, _segment(session, segment_id))
    session.commit()
    return Response(status_code=204)


# -- generators -------------------------------------------------------------------------------


def generator_view(generator: Generator) -> GeneratorOut:
    caps = generator.capabilities
    reason = generator.unavailable()
    return GeneratorOut(
        id=generator.id, version=generator.version, description=generator.description,
        params_schema=generator.params_model.model_json_schema(),
        durations=[str(d) for d in caps.durations] if caps.durations is not None else None,
        max_seconds=str(caps.max_seconds), sizes=[f"{w}x{h}" for w, h in caps.sizes] if caps.sizes else None,
        inputs=caps.inputs, input_types=list(caps.input_types), requires_input=caps.requires_input,
        needs_key=caps.needs_key, key_set=generator.key_set(),
        available=reason is None, unavailable_reason=reason, pool=caps.pool, can_cancel=caps.can_cancel,
    )  # fmt: skip


@router.get("/generators", response_model=list[GeneratorOut], summary="The clip generators",
            description="Built-in ones and those installed as `media_pipeline.generators` entry points: id, version, "
            "params schema, durations, sizes, whether each needs an API key and whether it is set.")  # fmt: skip
def list_generators(settings: SettingsDep) -> list[GeneratorOut]:
    return [generator_view(g) for g in _generators(settings).values()]


# -- renders ----------------------------------------------------------------------------------


def render_view(composition_id: int, job_params: dict[str, Any]) -> RenderOut:
    key = str(job_params.get("partition_key", ""))
    _, render_id = split_render_key(key)
    return RenderOut(
        id=render_id, composition_id=composition_id, partition_key=key,
        output_url=artifact_url(f"compositions/{composition_id}/output/{render_id}.mp4"),
    )  # fmt: skip


def start_render(
    session: Session, gateway: Any, response: Response, composition_id: int, body: RenderRequest,
    idempotency_key: str | None,
) -> RenderCreated:  # fmt: skip
    job = start_job(
        session, gateway, response, kind=KIND, subject_id=composition_id,
        request=CompositionRenderConfig(force_segments=body.force_segments), idempotency_key=idempotency_key,
    )  # fmt: skip
    return RenderCreated(render=render_view(composition_id, job.params), job=job)


@router.post("/compositions/{composition_id}/renders", status_code=202, response_model=RenderCreated,
             summary="Render the composition",
             description="Launches `render_composition` on a new `composition_renders` partition with the "
             "composition as it is now. Segments whose clip is in the generation cache are not generated again; "
             '`{"force_segments": [ids]}` generates those anew. Follow the job at `/v1/jobs/{id}` (its `items[]` '
             "has one entry per segment: status, progress, cache hit or miss, the provider's task id, the error). "
             "A generator without its API key, a missing input, impossible crossfades: the job fails in VALIDATE "
             "with a sentence.",
             responses=problem_responses(400, 404, 409, 422, 502, 503, descriptions={
                 409: "No segments yet (`no_segments`), a forced segment not in the composition "
                      "(`unknown_segment`), or the Idempotency-Key was used for another request."}))  # fmt: skip
def create_render(
    composition_id: CompositionId,
    response: Response,
    session: SessionDep,
    gateway: GatewayDep,
    body: RenderRequest | None = None,
    idempotency_key: IdempotencyKey = None,
) -> RenderCreated:
    return start_render(session, gateway, response, composition_id, body or RenderRequest(), idempotency_key)


@router.get("/compositions/{composition_id}/renders/{render_id}", summary="What a finished render did",
            description="Frames, each segment's generator, version, cache hit or miss, cache key and task id, the "
            "removed segments, the pieces encoded and reused. 404 until the render has succeeded.",
            responses=problem_responses(404))  # fmt: skip
def render_result(
    composition_id: CompositionId,
    render_id: Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", description="The render's id")],
    settings: SettingsDep,
) -> dict[str, Any]:
    record = settings.artifact_root / "compositions" / str(composition_id) / "renders" / render_id / "result.json"
    if not record.is_file():
        raise ApiProblem(404, "not_found", f"render {render_id} of composition {composition_id} has not finished "
                         "(or does not exist)")  # fmt: skip
    return dict(json.loads(record.read_text()))
