"""Provider adapters: one module per provider turning its status answers into `Observation`s."""
