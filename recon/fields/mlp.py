"""Small fully connected networks (ReLU hidden layers, linear output)."""
from __future__ import annotations

from torch import Tensor, nn


class MLP(nn.Module):
    """in_dim -> [hidden_dim] * n_hidden -> out_dim with ReLU between layers."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, n_hidden: int = 1, bias: bool = True):
        super().__init__()
        dims = [in_dim] + [hidden_dim] * n_hidden + [out_dim]
        layers: list[nn.Module] = []
        for i in range(len(dims) - 1):
            layers.append(nn.Linear(dims[i], dims[i + 1], bias=bias))
            if i < len(dims) - 2:
                layers.append(nn.ReLU(inplace=True))
        self.net = nn.Sequential(*layers)

    @property
    def linears(self) -> list[nn.Linear]:
        return [m for m in self.net if isinstance(m, nn.Linear)]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
