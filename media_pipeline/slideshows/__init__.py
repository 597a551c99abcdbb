"""The slideshows area: narrated slideshows rendered from a scene spec, images, voiceovers and music."""
