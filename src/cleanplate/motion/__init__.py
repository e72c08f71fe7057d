"""Motion: frame registration, optical flow and shot detection, shared by segment/ and fill/."""
