"""Teaching: the gradient check command, the notebook tools and the notebooks' exercise checks.

- `check`: `hdetach-np check`, the hand-derived BPTT against finite differences;
- `notebooks`: fast mode, student copies, execution of the notebooks in `notebooks/`;
- `exercises`: one module of checks per notebook (`nb01` ... `nb05`).
"""
