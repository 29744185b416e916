"""cxr_core: the shared layer - domain, settings, ports, AWS adapters and service functions."""
