"""darkgan.generation"""
