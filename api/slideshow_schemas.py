"""Request and response bodies of the slideshow routes (the requests are the area's own models)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas import Job


class ScenesStored(BaseModel):
    slideshow_id: str
    scenes: int = Field(description="How many scenes were stored")
    url: str = Field(description="Download URL of the stored scenes.json")


class StoredFile(BaseModel):
    subdir: str
    name: str
    sha256: str
    size: int
    stored: str = Field(
        description="`new`, `unchanged` (same name, same bytes) or `linked` (same bytes as another file)"
    )
    url: str


class AssetsStored(BaseModel):
    slideshow_id: str
    files: list[StoredFile]


class AssetFile(BaseModel):
    subdir: str = Field(description="`images`, `voiceovers` or `music`")
    name: str = Field(description="The name scenes and render options refer to it by")
    sha256: str
    size: int
    url: str


class AssetList(BaseModel):
    slideshow_id: str
    files: list[AssetFile] = Field(description="Every uploaded file, by folder then name")


class Render(BaseModel):
    id: str = Field(description="The render's id; its Dagster partition is `<slideshow id>.<render id>`")
    slideshow_id: str
    partition_key: str
    output_url: str = Field(description="Where the video will be once the job has succeeded")


class RenderCreated(BaseModel):
    render: Render
    job: Job


class LegacyJobCreated(BaseModel):
    """The original Render API's answer."""

    jobId: str  # the original API's spelling


class OutputFile(BaseModel):
    name: str
    size: int
    url: str


class Outputs(BaseModel):
    slideshow_id: str
    files: list[OutputFile]
