"""The media core: ffmpeg, probing, frame and rate maths, atomic files.

It knows no product area, no ORM, no Dagster and no FastAPI (a test checks the imports).
"""
