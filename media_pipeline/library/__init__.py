"""The media library area: uploads stored once by sha-256, image and video edits with lineage,
saved workflows, best frames."""
