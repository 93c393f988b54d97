"""Federation tooling: the SDL file, the owner check, and (in Node) the test catalog and gateway."""
