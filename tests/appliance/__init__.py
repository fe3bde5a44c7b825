"""Boot tests of the test appliance (appliances/) under real libvirt + QEMU."""
