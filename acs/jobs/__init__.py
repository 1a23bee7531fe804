"""Tasks: the durable per-device queue of RPCs, and the policies that fill it on events."""
