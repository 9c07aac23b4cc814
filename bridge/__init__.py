"""wispanel-bridge: provisioning bridge between billing systems and WisPanel panels."""

__version__ = "0.1.0"
