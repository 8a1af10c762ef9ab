"""`ceal trainer`: the continuous-training worker (held-out split, promotion gate, lineage, stop signal)."""
