"""Adapters that make outside models speak the mdmi model interface."""
