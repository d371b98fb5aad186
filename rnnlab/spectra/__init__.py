"""Spectra and random-matrix theory (NumPy): eigenvalue conventions and the outlier rule, theory
predictions of outliers, and the per-epoch leading-eigenvalue tracker with its compiled kernel.
No torch: the analysis imports this layer in every dask worker."""
