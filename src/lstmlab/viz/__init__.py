"""Pictures: training curves and accuracy by gap (plots.py)."""
