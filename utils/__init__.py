"""What the scripts share and the paper does not need: flags, devices and
one-line errors (cli), atomic saves (atomic_file), pickle-free loading
(safe_npz), log.json (training_log), snapshots and Ctrl-C (snapshot), and
Numba's kernels where Numba imports (numba_kernels)."""
