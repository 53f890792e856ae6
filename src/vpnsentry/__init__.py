"""vpnsentry: find intrusions that come in through a corporate VPN, in the logs you have."""

__version__ = "0.1.0"
