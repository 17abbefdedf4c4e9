"""Where accepted events go: the sink protocol and factory, the local file, the spool and the forwarder."""
