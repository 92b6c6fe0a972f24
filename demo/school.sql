-- The demo's student/course model. Idempotent, so a demo restarted on kept data (--data-dir) loads cleanly.
CREATE DATABASE IF NOT EXISTS school;
USE school;
CREATE TABLE IF NOT EXISTS student (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS course (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS student_course (
  student_id INT UNSIGNED NOT NULL,
  course_id INT UNSIGNED NOT NULL,
  PRIMARY KEY (student_id, course_id),
  KEY course_id (course_id),
  CONSTRAINT student_course_student FOREIGN KEY (student_id) REFERENCES student (id),
  CONSTRAINT student_course_course FOREIGN KEY (course_id) REFERENCES course (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT IGNORE INTO student (id, name) VALUES (1, 'Ada Lovelace'), (2, 'Alan Turing'), (3, 'Grace Hopper');
INSERT IGNORE INTO course (id, name) VALUES (1, 'Databases'), (2, 'Distributed Systems');
INSERT IGNORE INTO student_course (student_id, course_id) VALUES (1, 1), (2, 1), (2, 2), (3, 2)
