"""cryptoki_shim.abi"""
