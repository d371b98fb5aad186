"""Archive schema, writer and reader."""
