"""cryptoki_shim.mechanisms"""
