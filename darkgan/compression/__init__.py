"""darkgan.compression"""
