"""Neural architecture search: H-Meta-NAS (hardware-aware supernet MAML) and PARSEC."""
