"""The extraction area: many videos in, exact frames and crops out, with a manifest."""
