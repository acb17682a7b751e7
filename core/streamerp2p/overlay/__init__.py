"""Sans-I/O overlay: pure state machines fed with datagrams and timer ticks."""
