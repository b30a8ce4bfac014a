-- 1,000 users; user 42 is Alice, the one whose profile update we follow.
INSERT INTO public.users (id, name, email, bio)
SELECT g, 'user ' || g, 'user' || g || '@example.com', 'hello'
  FROM generate_series(1, 1000) g;
UPDATE public.users SET name = 'Alice', email = 'alice@example.com', bio = 'likes tea' WHERE id = 42;
