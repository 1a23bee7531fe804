"""Cisco MPP provisioning: flat profiles, macros, the TR-069 <-> XML map, encryption, profile store."""
