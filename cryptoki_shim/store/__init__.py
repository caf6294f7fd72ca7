"""cryptoki_shim.store"""
