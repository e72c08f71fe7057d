"""Automatic plate checks (residue, flat blocks, seams) and image metrics (PSNR, SSIM)."""

from cleanplate.qa.checks import CHECK_HELP, CHECKS, PlateChecker, create_checker
from cleanplate.qa.metrics import flat_score, psnr, residue_score, seam_score, ssim, ssim_map

__all__ = [
    "CHECKS",
    "CHECK_HELP",
    "PlateChecker",
    "create_checker",
    "flat_score",
    "psnr",
    "residue_score",
    "seam_score",
    "ssim",
    "ssim_map",
]
