"""Training and recording: the batched trainer, its per-epoch monitor, the recording thread that
computes snapshot spectra and hands records to the archive writer, one run end to end (with stop
and resume), sweeps on dask.distributed, and resource checks made before a run."""
