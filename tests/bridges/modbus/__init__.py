"""Tests of the Modbus bridge."""
