"""pcst_train: stream a pcst store into PyTorch and adapt a pre-trained denoiser.

Never imports numba or dask.
"""
