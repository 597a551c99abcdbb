"""The product areas, one package each under media_pipeline/. Adding an area adds one line here.

Each area package has `definitions.py` (its part of the asset graph: `definitions(config)`) and,
when it offers jobs over the API, `job_kinds.py` (its registered job kinds).
"""

AREAS: tuple[str, ...] = (
    "editorial",
    "slideshows",
    "extraction",
    "library",
    "compositions",
)
