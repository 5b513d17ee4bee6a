"""Which PostgreSQL functions a read-only query may call.

An allowlist, not a denylist: PostgreSQL has thousands of functions and extensions add more, and a
function that writes, sleeps, signals other backends, reads server files or runs SQL text of its own
is dangerous even inside a READ ONLY transaction. Only the built-ins below are accepted, plus whatever
the operator adds with PG_MCP_ALLOW_FUNCTIONS. `DENIED_REASONS` only improves the refusal message
for well-known dangerous names; a name missing from both lists is refused all the same.
"""

from pg_mcp.names import setting_parts

_AGGREGATES = """
    count sum avg min max string_agg array_agg json_agg json_agg_strict jsonb_agg jsonb_agg_strict
    json_object_agg json_object_agg_strict json_object_agg_unique json_object_agg_unique_strict
    jsonb_object_agg jsonb_object_agg_strict jsonb_object_agg_unique jsonb_object_agg_unique_strict
    json_arrayagg json_objectagg xmlagg any_value range_agg range_intersect_agg
    bool_and bool_or every bit_and bit_or bit_xor
    stddev stddev_pop stddev_samp variance var_pop var_samp corr covar_pop covar_samp
    regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy regr_syy
    percentile_cont percentile_disc mode rank dense_rank percent_rank cume_dist grouping
"""

_WINDOW = "row_number ntile lag lead first_value last_value nth_value"

_STRING = """
    ascii bit_length btrim char_length character_length chr concat concat_ws format initcap left length
    lower lpad ltrim md5 normalize octet_length overlay parse_ident position quote_ident quote_literal
    quote_nullable repeat replace reverse right rpad rtrim split_part starts_with string_to_array
    string_to_table strpos substr substring to_ascii to_hex to_bin to_oct translate trim unistr upper
    casefold regexp_count regexp_instr regexp_like regexp_match regexp_matches regexp_replace
    regexp_split_to_array regexp_split_to_table regexp_substr to_char to_number
    sha224 sha256 sha384 sha512 encode decode convert convert_from convert_to get_bit get_byte
    set_bit set_byte bit_count crc32 crc32c
"""

_MATH = """
    abs cbrt ceil ceiling degrees div exp factorial floor gcd lcm ln log log10 min_scale mod pi power
    pow radians round scale sign sqrt trim_scale trunc width_bucket random random_normal erf erfc
    acos acosd asin asind atan atand atan2 atan2d cos cosd cot cotd sin sind tan tand
    sinh cosh tanh asinh acosh atanh
"""

_DATETIME = """
    age clock_timestamp date_add date_subtract date_bin date_part date_trunc extract isfinite
    justify_days justify_hours justify_interval make_date make_interval make_time make_timestamp
    make_timestamptz now statement_timestamp timeofday transaction_timestamp to_timestamp to_date
    timezone overlaps
"""

_JSON = """
    to_json to_jsonb row_to_json array_to_json json_build_array json_build_object json_object
    json_array json_scalar json_serialize json_exists json_query json_value
    json_array_elements json_array_elements_text json_array_length json_each json_each_text
    json_extract_path json_extract_path_text json_object_keys json_populate_record
    json_populate_recordset json_strip_nulls json_to_record json_to_recordset json_typeof
    jsonb_build_array jsonb_build_object jsonb_object jsonb_array_elements jsonb_array_elements_text
    jsonb_array_length jsonb_each jsonb_each_text jsonb_extract_path jsonb_extract_path_text
    jsonb_object_keys jsonb_populate_record jsonb_populate_recordset jsonb_populate_record_valid
    jsonb_strip_nulls jsonb_to_record jsonb_to_recordset jsonb_typeof jsonb_set jsonb_set_lax
    jsonb_insert jsonb_pretty jsonb_path_exists jsonb_path_match jsonb_path_query
    jsonb_path_query_array jsonb_path_query_first jsonb_path_exists_tz jsonb_path_match_tz
    jsonb_path_query_tz jsonb_path_query_array_tz jsonb_path_query_first_tz
    jsonb_exists jsonb_exists_any jsonb_exists_all jsonb_contains jsonb_contained jsonb_concat
"""

_ARRAY_RANGE = """
    array_append array_cat array_dims array_fill array_length array_lower array_ndims array_position
    array_positions array_prepend array_remove array_replace array_reverse array_sample array_shuffle
    array_sort array_to_string array_upper cardinality trim_array unnest generate_series
    generate_subscripts isempty lower_inc upper_inc lower_inf upper_inf range_merge multirange
    int4range int8range numrange tsrange tstzrange daterange
    int4multirange int8multirange nummultirange tsmultirange tstzmultirange datemultirange
"""

_NETWORK_GEOMETRY = """
    abbrev broadcast family host hostmask inet_merge inet_same_family masklen netmask network
    set_masklen macaddr8_set7bit
    area center diagonal diameter height isclosed isopen npoints pclose popen radius slope width
    box bound_box circle line lseg path point polygon
"""

_TEXT_SEARCH = """
    to_tsvector to_tsquery plainto_tsquery phraseto_tsquery websearch_to_tsquery json_to_tsvector
    jsonb_to_tsvector ts_rank ts_rank_cd ts_headline setweight strip numnode querytree
    tsvector_to_array array_to_tsvector ts_delete ts_filter tsquery_phrase get_current_ts_config
"""

_XML = """
    xmlcomment xmlconcat xmlelement xmlforest xmlpi xmlroot xmlexists xmlparse xmlserialize xmltable
    xmltext xpath xpath_exists xml_is_well_formed xml_is_well_formed_content
    xml_is_well_formed_document
"""

_CONDITIONAL_AND_CASTS = """
    coalesce nullif greatest least num_nulls num_nonnulls
    text int2 int4 int8 float4 float8 numeric bool date time timetz timestamp timestamptz interval
    bpchar varchar char name money xml inet cidr macaddr uuid oid json jsonb bytea tsvector tsquery
    regclass regtype regproc regprocedure regoper regoperator regnamespace regrole regcollation regconfig
    regdictionary similar_to_escape like_escape is_normalized
    gen_random_uuid uuidv4 uuidv7 uuid_extract_timestamp uuid_extract_version
    enum_first enum_last enum_range currval lastval
"""

_SESSION_AND_CATALOG = """
    current_catalog current_database current_query current_role current_schema current_schemas
    current_user session_user system_user user version current_setting
    inet_client_addr inet_client_port inet_server_addr inet_server_port pg_backend_pid
    pg_blocking_pids pg_conf_load_time pg_postmaster_start_time pg_is_in_recovery pg_jit_available
    pg_my_temp_schema pg_is_other_temp_schema pg_listening_channels pg_trigger_depth
    pg_safe_snapshot_blocking_pids pg_notification_queue_usage
    has_any_column_privilege has_column_privilege has_database_privilege
    has_foreign_data_wrapper_privilege has_function_privilege has_language_privilege
    has_parameter_privilege has_schema_privilege has_sequence_privilege has_server_privilege
    has_table_privilege has_tablespace_privilege has_type_privilege pg_has_role row_security_active
    acldefault aclexplode makeaclitem
    pg_collation_is_visible pg_conversion_is_visible pg_function_is_visible pg_opclass_is_visible
    pg_operator_is_visible pg_opfamily_is_visible pg_statistics_obj_is_visible pg_table_is_visible
    pg_ts_config_is_visible pg_ts_dict_is_visible pg_ts_parser_is_visible pg_ts_template_is_visible
    pg_type_is_visible
    format_type pg_basetype pg_char_to_encoding pg_encoding_to_char pg_client_encoding
    pg_get_catalog_foreign_keys pg_get_constraintdef pg_get_expr pg_get_functiondef
    pg_get_function_arguments pg_get_function_identity_arguments pg_get_function_result
    pg_get_indexdef pg_get_keywords pg_get_partkeydef pg_get_ruledef pg_get_serial_sequence
    pg_get_statisticsobjdef pg_get_triggerdef pg_get_userbyid pg_get_viewdef
    pg_index_column_has_property pg_index_has_property pg_indexam_has_property pg_options_to_table
    pg_settings_get_flags pg_typeof pg_collation_for pg_describe_object pg_identify_object
    pg_identify_object_as_address pg_get_object_address pg_input_is_valid pg_input_error_info
    col_description obj_description shobj_description
    pg_column_compression pg_column_size pg_database_size pg_indexes_size pg_relation_size
    pg_size_bytes pg_size_pretty pg_table_size pg_total_relation_size pg_tablespace_size
    to_regclass to_regcollation to_regnamespace to_regoper to_regoperator to_regproc
    to_regprocedure to_regrole to_regtype to_regtypemod
"""

_REGRESSION_SUITE_BUILTINS = """
    ts_lexize ts_debug ts_parse ts_token_type
    pg_partition_tree pg_partition_root pg_partition_ancestors satisfies_hash_partition
    getdatabaseencoding pg_get_function_arg_default pg_relation_is_updatable pg_column_is_updatable
    pg_sequence_parameters pg_mcv_list_items pg_timezone_names pg_timezone_abbrevs pg_filenode_relation
    pg_relation_filenode amvalidate currtid2
    pg_stat_get_snapshot_timestamp pg_stat_get_function_calls pg_stat_have_stats pg_stat_get_replication_slot
    pg_stat_get_subscription_stats pg_stat_clear_snapshot
    txid_current_snapshot pg_current_snapshot
    txid_snapshot_xip txid_snapshot_xmin txid_snapshot_xmax pg_snapshot_xip pg_snapshot_xmin pg_snapshot_xmax
    txid_visible_in_snapshot pg_visible_in_snapshot txid_status pg_xact_status xid8cmp
    jsonb_delete jsonb_delete_path
    pg_lsn float4send float8send array_in anyrange_in tsvectorin tsvectorout cash_words
    float8_accum float8_combine float8_regr_accum float8_regr_combine booland_statefunc boolor_statefunc
    numeric_inc int4mul booleq boolne cashlarger cashsmaller circle_center poly_center ishorizontal isvertical
    range_adjacent range_minus range_contains range_contained_by range_overlaps_multirange
    multirange_overlaps_range multirange_overlaps_multirange multirange_contains_elem
    multirange_contains_range multirange_contains_multirange elem_contained_by_multirange
    range_contained_by_multirange multirange_contained_by_multirange
    hashint2 hashint2extended hashint4 hashint4extended hashint8 hashint8extended hashfloat4
    hashfloat4extended hashfloat8 hashfloat8extended hashoid hashoidextended hashchar hashcharextended
    hashname hashnameextended hashtext hashtextextended hashoidvector hashoidvectorextended hash_aclitem
    hash_aclitem_extended hashmacaddr hashmacaddrextended hashmacaddr8 hashmacaddr8extended hashinet
    hashinetextended hash_numeric hash_numeric_extended hashbpchar hashbpcharextended time_hash
    time_hash_extended timetz_hash timetz_hash_extended interval_hash interval_hash_extended timestamp_hash
    timestamp_hash_extended uuid_hash uuid_hash_extended pg_lsn_hash pg_lsn_hash_extended hashenum
    hashenumextended jsonb_hash jsonb_hash_extended hash_range hash_range_extended hash_multirange
    hash_multirange_extended hash_array hash_array_extended hash_record hash_record_extended
"""
"""Built-ins PostgreSQL's own regression suite reads with: catalog, partition, snapshot and hash
functions, and the support functions behind operators and aggregates (each computes a value only)."""

ALLOWED_FUNCTIONS: frozenset[str] = frozenset(
    " ".join(
        (
            _AGGREGATES,
            _WINDOW,
            _STRING,
            _MATH,
            _DATETIME,
            _JSON,
            _ARRAY_RANGE,
            _NETWORK_GEOMETRY,
            _TEXT_SEARCH,
            _XML,
            _CONDITIONAL_AND_CASTS,
            _SESSION_AND_CATALOG,
            _REGRESSION_SUITE_BUILTINS,
        )
    ).split()
)
"""Lower-case names of built-in functions that only compute a value from their arguments or read state."""

_SLEEPS = "it makes the server wait, holding a connection"
_SIGNALS = "it signals or stops other database sessions"
_ADVISORY = "it takes an advisory lock that outlives the query"
_SETTINGS = "it changes server or session settings"
_SEQUENCES = "it changes a sequence"
_LARGE_OBJECTS = "it reads or writes large objects or server files"
_FILES = "it reads files or directories on the database server"
_REMOTE = "it connects to another database"
_RUNS_SQL = "it runs SQL text of its own, which this guard cannot check"
_NOTIFY = "it sends a notification or writes to the WAL"
_REPLICATION = "it changes replication state"
_ADMIN = "it is a server administration function"
_XID = "it assigns a transaction id"

DENIED_REASONS: dict[str, str] = {
    "pg_terminate_backend": _SIGNALS,
    "pg_cancel_backend": _SIGNALS,
    "pg_signal_backend": _SIGNALS,
    "set_config": _SETTINGS,
    "setseed": _SETTINGS,
    "nextval": _SEQUENCES,
    "setval": _SEQUENCES,
    "loread": _LARGE_OBJECTS,
    "lowrite": _LARGE_OBJECTS,
    "pg_read_file": _FILES,
    "pg_read_binary_file": _FILES,
    "pg_stat_file": _FILES,
    "pg_file_write": _FILES,
    "pg_file_rename": _FILES,
    "pg_file_unlink": _FILES,
    "ts_stat": _RUNS_SQL,
    "ts_rewrite": _RUNS_SQL,
    "query_to_xml": _RUNS_SQL,
    "query_to_xmlschema": _RUNS_SQL,
    "query_to_xml_and_xmlschema": _RUNS_SQL,
    "cursor_to_xml": _RUNS_SQL,
    "cursor_to_xmlschema": _RUNS_SQL,
    "pg_notify": _NOTIFY,
    "pg_logical_emit_message": _NOTIFY,
    "pg_reload_conf": _ADMIN,
    "pg_rotate_logfile": _ADMIN,
    "pg_switch_wal": _ADMIN,
    "pg_promote": _ADMIN,
    "pg_import_system_collations": _ADMIN,
    "pg_export_snapshot": _ADMIN,
    "pg_log_backend_memory_contexts": _ADMIN,
    "txid_current": _XID,
    "pg_current_xact_id": _XID,
}
"""Why well-known dangerous functions are refused (exact names); families are in `_DENIED_PREFIXES`."""

_DENIED_PREFIXES: tuple[tuple[str, str], ...] = (
    ("pg_sleep", _SLEEPS),
    ("pg_advisory_", _ADVISORY),
    ("pg_try_advisory_", _ADVISORY),
    ("lo_", _LARGE_OBJECTS),
    ("pg_ls_", _FILES),
    ("dblink", _REMOTE),
    ("table_to_xml", _RUNS_SQL),
    ("schema_to_xml", _RUNS_SQL),
    ("database_to_xml", _RUNS_SQL),
    ("pg_create_", _REPLICATION),
    ("pg_drop_replication_slot", _REPLICATION),
    ("pg_replication_", _REPLICATION),
    ("pg_logical_slot_", _REPLICATION),
    ("pg_copy_", _REPLICATION),
    ("pg_stat_reset", _ADMIN),
    ("pg_backup_", _ADMIN),
    ("pg_wal_replay_", _ADMIN),
)

_NOT_LISTED = "it is not on the list of functions known to be read-only"


def is_denied(name: str) -> bool:
    """Whether `name` is a well-known dangerous function (refused even when reached through a view)."""
    return name in DENIED_REASONS or any(name.startswith(prefix) for prefix, _ in _DENIED_PREFIXES)


def denial_reason(name: str) -> str:
    """Explain why `name` is refused: a specific reason for well-known dangerous functions."""
    if name in DENIED_REASONS:
        return DENIED_REASONS[name]
    for prefix, reason in _DENIED_PREFIXES:
        if name.startswith(prefix):
            return reason
    return _NOT_LISTED


def operator_allowed(name: str, schema: str | None, extra: frozenset[str]) -> bool:
    """Whether the operator allowed a function so named: a bare name allows it in any schema, and
    "schema.name" allows it called with or without the schema (PostgreSQL's analysis of the statement
    then shows which function the call resolves to, and only the allowed one passes)."""
    if name in extra:
        return True
    if schema is not None:
        return f"{schema}.{name}" in extra
    return any(setting_parts(entry)[-1] == name for entry in extra)


def is_function_allowed(name: str, schema: str | None, extra: frozenset[str]) -> tuple[bool, str | None]:
    """Decide a call of function `name` (as PostgreSQL resolves it) qualified by `schema`, if any.

    Unqualified: a listed built-in or an operator-allowed name. Qualified: only `pg_catalog` (where
    built-ins live) with an allowed bare name, or an operator-allowed "schema.name". Returns
    (allowed, reason when refused).
    """
    if schema == "pg_catalog":
        allowed = name in ALLOWED_FUNCTIONS or name in extra or f"{schema}.{name}" in extra
    else:
        allowed = (schema is None and name in ALLOWED_FUNCTIONS) or operator_allowed(name, schema, extra)
    if allowed:
        return True, None
    if schema is not None and schema != "pg_catalog":
        return (
            False,
            f"it is a function in schema {schema!r}, not a built-in, and the operator has not allowed it",
        )
    return False, denial_reason(name)
