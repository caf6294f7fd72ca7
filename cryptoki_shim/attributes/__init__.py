"""cryptoki_shim.attributes"""
