"""Shapes of loss curves and surfaces (Xu et al. 2024)."""
