"""cryptoki_shim.backends"""
