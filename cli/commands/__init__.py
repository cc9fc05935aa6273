"""The commands, one module per topic; ``cli.main`` registers them on the root app (they never import it)."""
