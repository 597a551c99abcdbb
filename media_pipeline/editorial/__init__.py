"""Editorial: OTIO cuts in; cut versions, shots, thumbnails, proxies, the conform and diffs out."""
