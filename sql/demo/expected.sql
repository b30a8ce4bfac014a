-- What every cache entry must hold: the row as JSON (exactly what the extension
-- captures), keyed like vset's default template.
SELECT 'public.users:' || id, row_to_json(u)::text FROM public.users u ORDER BY id;
