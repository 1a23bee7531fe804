"""acs: a TR-069 (CWMP) Auto-Configuration Server for fleets of Cisco MPP phones and any CPE."""

__version__ = "0.1.0"
