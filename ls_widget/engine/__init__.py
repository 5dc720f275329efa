"""The engine: pure PyTorch/NumPy/SciPy, no Jupyter import."""
