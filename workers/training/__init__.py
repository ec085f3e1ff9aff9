"""Training tasks run on Dask workers: XGBoost on the GPU where there is one, CPU elsewhere."""
