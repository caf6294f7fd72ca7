"""cryptoki_shim.core"""
