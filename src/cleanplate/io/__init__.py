"""Frames in (folders, videos), outputs out (atomic writes), manifests (resume)."""
