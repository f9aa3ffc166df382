"""Raspberry Pi CPUs under QEMU user-mode emulation: build an aarch64 sysroot, run bundles on it."""
