"""The two-path analysis: the LSTM gradient split exactly into its cell-state path and its h path.

- `split`: the split itself (`gradient_paths`), h-detach in expectation, temporal credit;
- `jacobians`: the same recursion in forward mode, with explicit per-step Jacobian blocks;
- `suppression`: the weight-scale sweep (the cell path is suppressed when weights are large);
- `plots`: figures of all of the above (matplotlib, imported when used).
"""

from . import plots
from .jacobians import (
    ForwardSensitivities,
    JacobianProducts,
    StepJacobians,
    forward_mode,
    jacobian_products,
    step_jacobians,
)
from .split import (
    PathGrads,
    TemporalCredit,
    expected_h_detach_gradient,
    expected_h_detach_paths,
    gradient_paths,
    gradient_paths_reference,
    h_detach_lambda,
    param_groups,
    path_ratios,
    temporal_credit,
)
from .suppression import SuppressionConfig, SuppressionResult, scale_params, suppression_sweep

__all__ = [
    "ForwardSensitivities", "JacobianProducts", "PathGrads", "StepJacobians", "SuppressionConfig",
    "SuppressionResult", "TemporalCredit", "expected_h_detach_gradient", "expected_h_detach_paths",
    "forward_mode", "gradient_paths", "gradient_paths_reference", "h_detach_lambda", "jacobian_products",
    "param_groups", "path_ratios", "scale_params", "step_jacobians", "suppression_sweep", "temporal_credit",
]
