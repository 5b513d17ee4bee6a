"""The database side: the pool and the one executor, value cutting, driver errors, codecs, catalog SQL, the role report."""
