"""Detection engine: the analytics pack, its working tables, alerts and their evaluation."""
